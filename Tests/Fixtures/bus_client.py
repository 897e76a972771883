#!/usr/bin/python3
"""A scripted D-Bus client for the multi-user tests.

Usage: bus_client.py ADDRESS 'JSON list of operations'
  ["own", NAME]                          request a well-known name
  ["call", "app"|"manager", MEMBER, ARGS] call a member of the service
  ["listen"]                              record every signal from the service
  ["wait", SECONDS]                       run the main loop, then report the signals seen
Prints one JSON list with one result per operation: a value, or {"error": NAME, "message": TEXT}.
Integers inside an options dictionary are sent as uint32; an argument "$N" is
replaced by the result of operation N.
"""
import json
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

SERVICE = "org.bgfetch.BackgroundFetch1"
PATH = "/org/bgfetch/BackgroundFetch1"
INTERFACES = {"app": SERVICE, "manager": SERVICE + ".Manager"}


def plain(value):
    if isinstance(value, (dbus.Array, list, dbus.Struct, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (dbus.Dictionary, dict)):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (int, dbus.UInt32, dbus.UInt64, dbus.Int32, dbus.Int64)):
        return int(value)
    return str(value)


def typed(arg):
    if isinstance(arg, dict):
        return dbus.Dictionary(
            {k: dbus.UInt32(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in arg.items()},
            signature="sv")
    return arg


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(sys.argv[1])
    signals = []
    results = []
    for op in json.loads(sys.argv[2]):
        try:
            if op[0] == "own":
                results.append(int(bus.request_name(op[1], dbus.bus.NAME_FLAG_DO_NOT_QUEUE)))
            elif op[0] == "call":
                proxy = bus.get_object(SERVICE, PATH)
                method = proxy.get_dbus_method(op[2], INTERFACES[op[1]])
                args = [results[int(a[1:])] if isinstance(a, str) and a.startswith("$") else a for a in op[3]]
                results.append(plain(method(*[typed(a) for a in args])))
            elif op[0] == "listen":
                bus.add_signal_receiver(
                    lambda *args, **kw: signals.append([kw["member"]] + plain(list(args))),
                    sender_keyword="sender", member_keyword="member", bus_name=SERVICE)
                results.append(None)
            elif op[0] == "wait":
                loop = GLib.MainLoop()
                GLib.timeout_add(int(op[1] * 1000), loop.quit)
                loop.run()
                results.append(list(signals))
        except dbus.exceptions.DBusException as error:
            results.append({"error": error.get_dbus_name(), "message": error.get_dbus_message()})
    print(json.dumps(results))


main()
