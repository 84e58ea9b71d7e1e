"""What citizens can ask the gateway, and what it answers.

This is the innermost layer: it knows the text commands (``BH MK <code>``), the password-reset
decision and the reply templates, and talks to storage only through the interfaces in
:mod:`commands.ports`. It imports neither Twisted nor SQLAlchemy, so every channel (SMS, IVR,
CLI) shares exactly the same rules and the rules are tested without I/O.
"""
