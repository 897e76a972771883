import BackgroundFetchCore
import DBus
import Logging

/// One logind `delay` inhibitor for `sleep`, held while any fetch is
/// outstanding, so a suspend waits for the apps' answers (up to logind's
/// `InhibitDelayMaxSec`). One per wake-up, not one per task: it is taken
/// when the first fetch goes out and closed as soon as none is outstanding.
@DaemonActor final class SleepInhibitor {
    let connection: BusConnection
    let logger: Logger
    private var descriptor: ReceivedFileDescriptor?
    private var asking = false
    /// Whether fetches are outstanding, as last told.
    private var wanted = false
    /// The logind connection that refused (polkit, `InhibitorsMax`): not asked
    /// again until logind restarts, rather than at every turn of the loop.
    private var refusedBy: String?

    init(connection: BusConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Takes or releases the inhibitor to match `outstanding`; `apps` names
    /// them in its `why`. Nothing happens without logind (`logind`, its
    /// unique name) on the bus.
    func update(outstanding: Bool, logind: String?, apps: () -> [AppKey]) {
        wanted = outstanding
        if !outstanding {
            if let descriptor {
                descriptor.close()
                self.descriptor = nil
                logger.debug("sleep inhibitor released")
            }
            return
        }
        guard descriptor == nil, !asking, let logind, logind != refusedBy else { return }
        let names = apps().map(\.appID)
        let shown = names.prefix(5).joined(separator: ", ") + (names.count > 5 ? " and \(names.count - 5) more" : "")
        let call: Message
        do {
            call = try Message.methodCall(
                destination: "org.freedesktop.login1", path: "/org/freedesktop/login1", interface: "org.freedesktop.login1.Manager",
                member: "Inhibit", [.string("sleep"), .string("bgfetch"), .string("apps are fetching: \(shown)"), .string("delay")],
                autoStart: false)
        } catch {
            return logger.error("cannot build an Inhibit call", metadata: ["error": "\(error)"])
        }
        asking = true
        connection.call(call, timeoutMilliseconds: 25_000) { result in
            DaemonActor.assumeIsolated { self.answered(result, by: logind) }
        }
    }

    private func answered(_ result: Result<Message, DBusError>, by logind: String) {
        asking = false
        switch result {
        case .success(let reply):
            guard let fd = reply.fileDescriptor(argument: 0) else {
                refusedBy = logind
                return logger.warning("logind's Inhibit answered without a file descriptor; not asking again until logind restarts")
            }
            // The fetches may have ended while we asked: then it goes at once.
            if wanted {
                descriptor = fd
                logger.debug("sleep inhibitor taken")
            } else {
                fd.close()
            }
        case .failure(let error):
            refusedBy = logind
            logger.notice(
                "cannot delay sleep for outstanding fetches; not asking again until logind restarts", metadata: ["error": "\(error)"])
        }
    }

    func release() {
        descriptor?.close()
        descriptor = nil
    }
}
