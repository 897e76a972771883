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

    /// Starts the app by bus activation, then sends the fetch to its name.
    func activate(_ task: TaskKey, requestID: UInt64) {
        let appID = task.app.appID
        connection.callBus("StartServiceByName", [.string(appID), .uint32(0)], timeoutMilliseconds: 30_000) { result in
            DaemonActor.assumeIsolated { self.activated(task, requestID: requestID, result) }
        }
    }

    private func activated(_ task: TaskKey, requestID: UInt64, _ result: Result<[DBusValue], DBusError>) {
        let appID = task.app.appID
        switch result {
        case .success:
            emit("FetchRequested", to: appID, [.string(task.name), .uint64(requestID)])
            logger.info("delivered", metadata: task.logMetadata(["request": "\(requestID)", "to": "\(appID)"]))
        case .failure(let error):
            logger.warning("cannot start the app", metadata: ["app": "\(appID)", "error": "\(error)"])
            engine.activationFailed(task: task, requestID: requestID)
        }
    }
}
