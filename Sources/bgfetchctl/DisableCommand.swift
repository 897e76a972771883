import ArgumentParser

/// `bgfetchctl disable APP`.
struct DisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Switch background fetch off for an app ('*' for every app).",
        discussion: """
            The app's status becomes Denied: its tasks are paused (kept, not fired) and it cannot \
            register or trigger tasks until enabled again.
            """
    )

    @OptionGroup var busOptions: BusOptions

    @Argument(help: "The app id, UID/APP_ID as root, or '*' for all of your apps.")
    var app: String

    func run() async throws {
        try await AppSwitch.set(app, enabled: false, busOptions)
    }
}
