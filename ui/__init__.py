"""User interfaces on the engine: the `soundsift` CLI (ui.cli) and the Streamlit page (ui.app)."""
