import Foundation
import TestKit

/// The stages that start bgfetchd on state written into its database.
extension Stages {
    // MARK: Restore

    func restores(_ template: String, floor: RestoreStage.Start) throws(HarnessError) {
        let count = scale.restoreTasks
        let apps = (count + scale.restoreTasksPerApp - 1) / scale.restoreTasksPerApp
        detail("seeding \(Format.count(count)) tasks of \(Format.count(apps)) apps (stopOnTerminate false, unbound, due in 50 min) into the daemon's schema")
        let seeded = try RestoreStage.seeded(lab, template: template, count: count, perApp: scale.restoreTasksPerApp, departedBindings: false)
        let sameBoot = try RestoreStage.measure(lab, folder: try RestoreStage.stateFolder(lab, "restore", from: seeded), settle: scale.settleSeconds)
        detail(
            "same boot: name owned after \(Format.millis(sameBoot.seconds * 1000)); VmHWM \(Format.mebibytes(sameBoot.peakKiB)), "
                + "VmRSS \(Format.mebibytes(sameBoot.currentKiB)) after \(Format.fixed(scale.settleSeconds, 1)) s")
        let emptyFloor = "empty " + Format.fixed(floor.seconds, 3) + " s"
        report.record(.restore, Measurement(measured: Format.fixed(sameBoot.seconds, 3) + " s", floor: emptyFloor, checked: sameBoot.seconds))
        report.record(
            .restoreMemory,
            Measurement(
                measured: Format.mebibytes(sameBoot.peakKiB), floor: "empty " + Format.mebibytes(floor.peakKiB),
                checked: Double(sameBoot.peakKiB) / 1024))

        let newBoot = try RestoreStage.measure(
            lab, folder: try RestoreStage.stateFolder(lab, "restore-boot", from: seeded), newBoot: true, settle: scale.settleSeconds)
        detail("after a new boot (every task turns dormant and is written back): \(Format.millis(newBoot.seconds * 1000)); VmHWM \(Format.mebibytes(newBoot.peakKiB))")
        report.record(.restoreNewBoot, Measurement(measured: Format.fixed(newBoot.seconds, 3) + " s", floor: emptyFloor, checked: newBoot.seconds))

        detail("seeding the same tasks still bound to \(Format.count(apps)) connections that have left the bus")
        let departedState = try RestoreStage.seeded(lab, template: template, count: count, perApp: scale.restoreTasksPerApp, departedBindings: true)
        let departed = try RestoreStage.measure(lab, folder: (departedState as NSString).deletingLastPathComponent, settle: scale.settleSeconds)
        detail("bindings departed (the bus is asked about each gone connection; every task is unbound and written back): \(Format.millis(departed.seconds * 1000)); VmHWM \(Format.mebibytes(departed.peakKiB))")
        report.record(.restoreDeparted, Measurement(measured: Format.fixed(departed.seconds, 3) + " s", floor: emptyFloor, checked: departed.seconds))
    }

    // MARK: Due

    func due(_ template: String) throws(HarnessError) {
        detail(
            "\(Format.count(scale.dueTasks)) tasks of \(scale.clients) apps, bound to their live connections, due at one instant T; "
                + "a lone task due 1 s earlier shows one fetch's cost; then the bus alone carries the same burst")
        let outcome = try DueStage.run(lab, template: template, count: scale.dueTasks, clients: scale.clients, lead: scale.dueLead)
        let late = outcome.lateness
        detail(
            "lateness after T: first \(Format.millis(late.min)), median \(Format.millis(late.median)), p99 \(Format.millis(late.percentile(99))), "
                + "last \(Format.millis(late.max)); lone task \(outcome.loneLateness.map { Format.millis($0) } ?? "n/a")")
        let bus = outcome.busOnly
        detail(
            "bus alone, the same \(Format.count(bus.count)) signals from a plain client: first \(Format.millis(bus.min)), "
                + "median \(Format.millis(bus.median)), p99 \(Format.millis(bus.percentile(99))), last \(Format.millis(bus.max))")
        report.record(
            .dueLateness,
            Measurement(
                measured: "p99 " + Format.millis(late.percentile(99)), floor: "bus p99 " + Format.millis(bus.percentile(99)),
                checked: late.percentile(99)))
    }

    // MARK: Idle

    func idle(_ template: String) throws(HarnessError) {
        let outcome = try IdleStage.run(
            lab, template: template, tasks: scale.idleTasks, apps: scale.clients, settle: scale.settleSeconds, seconds: scale.idleSeconds)
        detail(
            "\(outcome.switches) context switch(es) in \(Format.fixed(scale.idleSeconds, 0)) s over \(outcome.threads) thread(s)"
                + (outcome.busyThreads.isEmpty ? "" : ": " + outcome.busyThreads.joined(separator: ", ")))
        report.record(
            .idleSwitches,
            Measurement(measured: "\(outcome.switches) in \(Format.fixed(scale.idleSeconds, 0)) s", checked: Double(outcome.switches)))
    }
}
