"""The Gradio browser UI: a view over `cofrida.Session`, with no logic of its own.

Modules: `ui.app` (layout, wiring, ``cofrida ui``), `ui.cli` (its options), `ui.callbacks` and
`ui.execution` (what the buttons do), `ui.state` (per-tab state, opening sessions),
`ui.images` (browser images <-> session images), `ui.robot_mode` (camera + configured arm).
"""

import os

# The app never reports usage to Gradio's servers (and this machine reaches none).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
