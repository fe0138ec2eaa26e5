"""E2B's ``Template`` builder over the Rust core (``e2b._native.TemplateCore``)."""
