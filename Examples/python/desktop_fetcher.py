#!/usr/bin/python3
"""A desktop app that bgfetch starts for its fetches, the desktop way.

GNOME and KDE apps are GApplications (or KDBusServices): a desktop entry with
DBusActivatable=true and a D-Bus service file let the session bus start them
by name. When a fetch falls due and the app is not running, bgfetchd calls
org.freedesktop.Application.ActivateAction("background-fetch",
[<(task, request_id)>], {}) on /org/example/DesktopFeeds; the bus starts
the app (`--gapplication-service`), GApplication turns the call into the
"background-fetch" action, and the app answers with FinishFetch.

Run it once by hand to register its task; then it may quit for good.
Files it needs (the tests write them):
  $XDG_DATA_DIRS/applications/org.example.DesktopFeeds.desktop
      [Desktop Entry]  ...  DBusActivatable=true
  a D-Bus service file:  Name=org.example.DesktopFeeds
                         Exec=/usr/bin/python3 desktop_fetcher.py --gapplication-service
"""
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

APP_ID = "org.example.DesktopFeeds"
SERVICE = "org.bgfetch.BackgroundFetch1"
PATH = "/org/bgfetch/BackgroundFetch1"


def call(app, method, parameters):
    """Calls bgfetch on the app's own connection, so the app id is its name."""
    return app.get_dbus_connection().call_sync(
        SERVICE, PATH, SERVICE, method, parameters, None, Gio.DBusCallFlags.NONE, -1, None)


class DesktopFeeds(Gio.Application):
    def __init__(self):
        super().__init__(application_id=APP_ID, flags=Gio.ApplicationFlags.FLAGS_NONE)
        fetch = Gio.SimpleAction.new("background-fetch", GLib.VariantType.new("(st)"))
        fetch.connect("activate", self.on_background_fetch)
        self.add_action(fetch)

    def on_background_fetch(self, _action, parameter):
        task, request_id = parameter.unpack()
        self.hold()
        new_data = True  # ... refresh the feeds here ...
        call(self, "FinishFetch", GLib.Variant("(tu)", (request_id, 2 if new_data else 1)))
        self.release()

    def do_activate(self):
        # Started by hand: register the task (kept after we quit).
        options = {"minimumInterval": GLib.Variant("u", 1), "stopOnTerminate": GLib.Variant("b", False)}
        call(self, "RegisterTask", GLib.Variant("(sa{sv})", ("refresh", options)))
        print("registered refresh", flush=True)


if __name__ == "__main__":
    sys.exit(DesktopFeeds().run(sys.argv))
