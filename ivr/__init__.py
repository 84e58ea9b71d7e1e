"""The 1900.9068 hotline IVR: AMI and AGI codecs, the link state machine and the dialog (pure,
no I/O), the call object and AMI client (Twisted), and prompt rendering. Imports only
:mod:`commands`."""
