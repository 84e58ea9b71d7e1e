"""SMPP v3.4 for the 8079 short code. Imports none of the project's packages but
``commands.secret``.

Pure (no twisted, time as an argument): ``framing`` (bytes -> PDUs), ``codec`` (the one smpplib
wrapper), ``text`` (codings, UDH/SAR, reply segments), ``reassembly`` (long messages),
``inbound`` / ``outbound`` (messages in, deliver_sm out), ``registry`` (what a listener's
connections share), ``session`` (the state machine) and ``events`` (its effects).
Twisted: ``protocol`` (SmppProtocol, SmppListener) and ``interfaces`` (what the application
implements: InboundHandler, BindWatcher, Observer).
"""
