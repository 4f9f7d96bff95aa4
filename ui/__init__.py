"""The Gradio browser UI: a view over `cofrida.Session`, with no logic of its own."""
