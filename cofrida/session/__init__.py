"""Co-painting sessions: the turn loop and its persistence (SQLite + atomically written images)."""

from cofrida.session.store import SessionStore, StrokeProgress, TurnRecord

__all__ = ["SessionStore", "StrokeProgress", "TurnRecord"]
