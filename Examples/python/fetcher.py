#!/usr/bin/python3
"""A background-fetch app in Python, with dbus-python and the GLib main loop.

    Examples/python/fetcher.py                          # registers "refresh" and waits
    bgfetchctl trigger org.bgfetch.ExamplePython refresh  # elsewhere: fetch now

It owns the bus name org.bgfetch.ExamplePython, which the service takes as the
app id (a Flatpak or an app-....scope unit would name the app instead).
--once exits after the first answered fetch (the tests use it).
Needs the Debian packages python3-dbus and python3-gi.
"""
import signal
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

SERVICE = "org.bgfetch.BackgroundFetch1"
PATH = "/org/bgfetch/BackgroundFetch1"
APP_ID = "org.bgfetch.ExamplePython"
NO_DATA, NEW_DATA, FAILED = 1, 2, 3  # BackgroundFetchResult


def main():
    once = "--once" in sys.argv[1:]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()  # DBUS_SESSION_BUS_ADDRESS
    if bus.request_name(APP_ID, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) != dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
        sys.exit(f"fetcher.py: the bus name {APP_ID} is taken")
    service = dbus.Interface(bus.get_object(SERVICE, PATH), SERVICE)
    loop = GLib.MainLoop()

    def on_fetch_requested(task, request_id):
        print(f"fetch {request_id} of {task}", flush=True)
        result = NEW_DATA  # refresh the app's data here, within FetchTimeout seconds
        service.FinishFetch(request_id, dbus.UInt32(result))
        print(f"answered fetch {request_id} of {task} with NewData", flush=True)
        if once:
            loop.quit()

    def on_fetch_expired(task, request_id):
        print(f"fetch {request_id} of {task} expired", flush=True)

    # FetchRequested and FetchExpired are sent to this connection only.
    for member, handler in (("FetchRequested", on_fetch_requested), ("FetchExpired", on_fetch_expired)):
        bus.add_signal_receiver(handler, signal_name=member, dbus_interface=SERVICE, bus_name=SERVICE, path=PATH)
    service.RegisterTask("refresh", {"minimumInterval": dbus.UInt32(15 * 60)}, signature="sa{sv}")
    print("registered 'refresh'; waiting for fetches", flush=True)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()


if __name__ == "__main__":
    try:
        main()
    except dbus.exceptions.DBusException as error:
        sys.exit(f"fetcher.py: {error.get_dbus_name()}: {error.get_dbus_message()}")
