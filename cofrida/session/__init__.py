"""Co-painting sessions: the turn loop and its persistence (SQLite + atomically written images).

- `Session`: capture, the person's turn, proposals, choice, plan, execution, undo, resume,
  export (`cofrida.session.session`).
- `open_sim_session`: a session on the simulated arm with the best proposer available.
- `SceneProposer`: the stand-in proposer used until the edit-model bundle is trained.
- `SessionStore`: the persistence underneath.
"""

from cofrida.session.scene_proposer import SceneProposer
from cofrida.session.session import Session, SessionConfig
from cofrida.session.simulated import open_sim_session
from cofrida.session.store import SessionStore, StrokeProgress, TurnRecord

__all__ = [
    "SceneProposer",
    "Session",
    "SessionConfig",
    "SessionStore",
    "StrokeProgress",
    "TurnRecord",
    "open_sim_session",
]
