import BackgroundFetchCore
import DBus
import Logging

/// Which apps have a `DBusActivatable=true` desktop entry (session bus
/// only). An entry found is remembered until the `applications` directories
/// change (inotify, no polling); an app with none is looked for again each
/// time (a few `stat` calls, only when a fetch finds the app not running),
/// so an entry in a directory made after the start is found too.
@DaemonActor final class DesktopEntries {
    let directories: [String]
    private var known: [String: Bool] = [:]
    private var watch: LoopDirectoryWatch?

    init(directories: [String], loop: EventLoop, logger: Logger) {
        self.directories = directories
        do {
            watch = try loop.watchDirectories(directories) {
                DaemonActor.assumeIsolated { self.known.removeAll() }
            }
        } catch {
            logger.notice("cannot watch the desktop entries; they are read once", metadata: ["error": "\(error.message)"])
        }
    }

    /// Whether `appID` is started the desktop way: its entry says
    /// `DBusActivatable=true` and the id is a bus name to call.
    func isDBusActivatable(_ appID: String) -> Bool {
        if let answer = known[appID] { return answer }
        guard appID.contains("."), !appID.hasPrefix(":"), Message.isValidBusName(appID),
            let answer = DesktopEntry.isDBusActivatable(appID: appID, in: directories)
        else { return false }
        known[appID] = answer
        return answer
    }

    func invalidate() {
        watch?.invalidate()
        watch = nil
    }
}
