import BackgroundFetchCore
import DBus

import Logging

extension Daemon {
    func send(_ event: EngineEvent) {
        switch event {
        case .fetchRequested(let destination, let task, let requestID):
            emit("FetchRequested", to: destination, [.string(task.name), .uint64(requestID)])
            logger.info("delivered", metadata: task.logMetadata(["request": "\(requestID)", "to": "\(destination)"]))
        case .fetchExpired(let destination, let task, let requestID):
            emit("FetchExpired", to: destination, [.string(task.name), .uint64(requestID)])
            logger.info("expired", metadata: task.logMetadata(["request": "\(requestID)"]))
        case .fetchFinished(let task, let requestID, let result):
            let arguments: [DBusValue] = [.string(task.app.appID), .string(task.name), .uint64(requestID), .uint32(result.rawValue)]
            if broadcastsFinished {
                emit("FetchFinished", interface: Wire.managerInterface, to: nil, arguments)
                return
            }
            for (monitor, uid) in monitors where uid == 0 || uid == task.app.uid {
                emit("FetchFinished", interface: Wire.managerInterface, to: monitor, arguments)
            }
        case .activateAndRequest(let task, let requestID):
            logger.info("activating", metadata: task.logMetadata(["request": "\(requestID)"]))
            activate(task, requestID: requestID)
        }
    }

    func emit(_ member: String, interface: String = Wire.appInterface, to destination: String?, _ arguments: [DBusValue]) {
        do {
            let signal = try Message.signal(
                path: Wire.objectPath, interface: interface, member: member, destination: destination, arguments)
            if round.isOpen { round.add(.signal(signal)) } else { connection.send(signal) }
        } catch {
            logger.error("cannot build a signal", metadata: ["member": "\(member)", "error": "\(error)"])
        }
    }

    /// Starts the app that has no connection: the desktop way
    /// (`ActivateAction`) when its desktop entry is `DBusActivatable`, else
    /// by bus activation of its name, then sends the fetch there.
    func activate(_ task: TaskKey, requestID: UInt64) {
        let appID = task.app.appID
        let timeout = Int32(FetchEngine.activationTimeout) * 1000
        if desktopEntries?.isDBusActivatable(appID) == true {
            let call: Message
            do {
                call = try Message.methodCall(
                    destination: appID, path: DesktopActivation.objectPath(forAppID: appID), interface: DesktopActivation.interface,
                    member: "ActivateAction",
                    [
                        .string(DesktopActivation.action),
                        .array(element: "v", [.variant(.structure([.string(task.name), .uint64(requestID)]))]),
                        .array(element: "{sv}", []),
                    ])
            } catch {
                return activated(task, requestID: requestID, how: "ActivateAction", .failure(error))
            }
            connection.call(call, timeoutMilliseconds: timeout) { result in
                DaemonActor.assumeIsolated { self.activated(task, requestID: requestID, how: "ActivateAction", result.map { _ in }) }
            }
            return
        }
        connection.callBus("StartServiceByName", [.string(appID), .uint32(0)], timeoutMilliseconds: timeout) { result in
            DaemonActor.assumeIsolated {
                if case .success = result { self.emit("FetchRequested", to: appID, [.string(task.name), .uint64(requestID)]) }
                self.activated(task, requestID: requestID, how: "bus activation", result.map { _ in })
            }
        }
    }

    /// The app was started (its fetch's timeout starts now), or could not
    /// be: the fetch waits as pending, with the reason logged.
    private func activated(_ task: TaskKey, requestID: UInt64, how: String, _ result: Result<Void, DBusError>) {
        switch result {
        case .success:
            engine.delivered(task: task, requestID: requestID)
            logger.info("delivered", metadata: task.logMetadata(["request": "\(requestID)", "to": "\(task.app.appID)", "by": "\(how)"]))
        case .failure(let error):
            logger.warning(
                "cannot start the app; the fetch waits for it",
                metadata: task.logMetadata(["request": "\(requestID)", "by": "\(how)", "error": "\(error)"]))
            engine.activationFailed(task: task, requestID: requestID)
        }
    }
}
