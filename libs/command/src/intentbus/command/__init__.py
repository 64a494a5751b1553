"""The plumbing of the ``intentbus`` command, for every member that adds commands.

A service's image holds this member, not ``intentbus-cli``: ``intentbus.command.app``
is the console script and collects the installed members' commands;
``intentbus.command.common`` has the shared options (``--nats-url``, ``--namespace``),
the bus session, the run helper and clear errors; ``intentbus.command.tables`` the one
table a service prints (positions).
"""
