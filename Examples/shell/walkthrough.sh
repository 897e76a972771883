#!/bin/sh
# bgfetch from the shell, with busctl and gdbus only: register a task as an app,
# fire it through the management interface, receive and answer it, list it,
# read its history, and remove it. Talks to the session bus named by
# DBUS_SESSION_BUS_ADDRESS; exits non-zero at the first step that fails.
#
# A process with no Flatpak id, app-....scope unit or bus name is known to the
# service by its executable's name, so every `busctl` call below acts as the
# app "busctl" (and would-be `gdbus` app calls as "gdbus"): the app side uses
# busctl, the management side gdbus.
set -eu

: "${DBUS_SESSION_BUS_ADDRESS:?set DBUS_SESSION_BUS_ADDRESS to the session bus address}"

SERVICE=org.bgfetch.BackgroundFetch1
OBJECT=/org/bgfetch/BackgroundFetch1
APP_INTERFACE=org.bgfetch.BackgroundFetch1
MANAGER=org.bgfetch.BackgroundFetch1.Manager
APP=busctl
TASK=walkthrough

as_app() { busctl --user call "$SERVICE" "$OBJECT" "$APP_INTERFACE" "$@"; }
manage() {
    method=$1
    shift
    gdbus call --session --dest "$SERVICE" --object-path "$OBJECT" --method "$MANAGER.$method" "$@"
}
fail() { echo "walkthrough.sh: $*" >&2; exit 1; }

echo "1. Register '$TASK' as the app '$APP'. stopOnTerminate=false keeps it after busctl exits."
as_app RegisterTask 'sa{sv}' "$TASK" 2 minimumInterval u 900 stopOnTerminate b false ||
    fail "$SERVICE did not answer: is bgfetchd running, or installed for D-Bus activation?"
[ "$(as_app IsTaskRegistered s "$TASK")" = "b true" ] || fail "the task is not registered"

echo "2. Fire it now through the management interface (what 'bgfetchctl trigger' does)."
reply=$(manage TriggerTask "$APP" "$TASK")
id=$(echo "$reply" | sed -n 's/^(uint64 \([0-9][0-9]*\),)$/\1/p')
[ -n "$id" ] || fail "unexpected TriggerTask reply: $reply"
echo "   request id $id (no busctl is listening, so the fetch waits as 'pending')"

echo "3. The app comes back and registers the task again: the waiting fetch is delivered to it."
as_app RegisterTask 'sa{sv}' "$TASK" 2 minimumInterval u 900 stopOnTerminate b false

echo "4. Answer it as the app, within FetchTimeout: FinishFetch with result 2 (NewData)."
as_app FinishFetch tu "$id" 2

echo "5. List the tasks (app id, task name, info)."
manage ListTasks

echo "6. The task's history: requested at, finished at (Unix µs), result."
history=$(manage GetHistory "$APP" "$TASK")
echo "$history"
case "$history" in
*"uint32 2)]"*) ;;
*) fail "the last fetch is not NewData: $history" ;;
esac

echo "7. Unregister it."
as_app UnregisterTask s "$TASK"
[ "$(as_app IsTaskRegistered s "$TASK")" = "b false" ] || fail "the task is still registered"
echo "Done."
