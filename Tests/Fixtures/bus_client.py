#!/usr/bin/python3
"""A scripted D-Bus client for the tests that run clients as other users.

Usage: bus_client.py ADDRESS 'JSON list of operations'
  ["own", NAME]                          request a well-known name
  ["release", NAME]                      release it
  ["await-owner", NAME, SECONDS]         wait until someone owns NAME (true), at most SECONDS (false)
  ["call", "app"|"manager", MEMBER, ARGS] call a member of the service
  ["listen"]                              record every signal from the service
  ["ready"]                               print READY (after a call, the match rules are in place)
  ["wait", SECONDS]                       run the main loop, then report the signals seen
  ["until", MEMBER, VALUE, SECONDS]      run until a signal MEMBER with VALUE among its arguments
                                          has come (a barrier), then report the signals seen;
                                          an error result if it does not come within SECONDS
Prints one JSON list with one result per operation: a value, or {"error": NAME, "message": TEXT}.
Integers inside an options dictionary are sent as uint32; an argument "$N" is
replaced by the result of operation N.
"""
import json
import sys
import time

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
    state = {"until": None, "loop": None}

    def arrived():
        member, value = state["until"]
        return any(s[0] == member and value in s[1:] for s in signals)

    def on_signal(*args, **kw):
        signals.append([kw["member"]] + plain(list(args)))
        if state["until"] is not None and arrived():
            state["loop"].quit()

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
                bus.add_signal_receiver(on_signal, sender_keyword="sender", member_keyword="member", bus_name=SERVICE)
                results.append(None)
            elif op[0] == "release":
                results.append(int(bus.release_name(op[1])))
            elif op[0] == "await-owner":
                deadline = time.monotonic() + op[2]
                while not bus.name_has_owner(op[1]) and time.monotonic() < deadline:
                    time.sleep(0.005)
                results.append(bool(bus.name_has_owner(op[1])))
            elif op[0] == "ready":
                print("READY", flush=True)
                results.append(None)
            elif op[0] == "until":
                state["until"] = (op[1], op[2])
                state["loop"] = GLib.MainLoop()
                timed_out = []

                def give_up():
                    timed_out.append(True)
                    state["loop"].quit()
                    return False

                timer = GLib.timeout_add(int(op[3] * 1000), give_up)
                # Signals that came during the calls before are dispatched by the loop.
                GLib.idle_add(lambda: state["loop"].quit() if arrived() else None)
                state["loop"].run()
                if not timed_out:
                    GLib.source_remove(timer)
                state["until"] = None
                if timed_out:
                    results.append({"error": "timeout", "message": "no %s with %r in %s s; seen: %r" % (op[1], op[2], op[3], signals)})
                else:
                    results.append(list(signals))
        except dbus.exceptions.DBusException as error:
            results.append({"error": error.get_dbus_name(), "message": error.get_dbus_message()})
    print(json.dumps(results), flush=True)


main()
