/// The service's names on the bus, said once for the daemon, the library,
/// `bgfetchctl`, the bench, the stress suite and the tests.
///
/// `dbus/org.bgfetch.BackgroundFetch1.xml` is the same contract in D-Bus
/// terms; a test checks the two agree.
public enum Wire {
    /// The well-known name the service owns.
    public static let busName = "org.bgfetch.BackgroundFetch1"
    /// The one object it serves.
    public static let objectPath = "/org/bgfetch/BackgroundFetch1"
    /// What apps call.
    public static let appInterface = "org.bgfetch.BackgroundFetch1"
    /// What users and administrators call.
    public static let managerInterface = "org.bgfetch.BackgroundFetch1.Manager"
    /// The service's version, as its `Version` property and `--version` say.
    public static let version = "0.1.0"

    /// A match rule for the service's name appearing and disappearing.
    public static let nameOwnerChangedRule =
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
        + "member='NameOwnerChanged',arg0='\(busName)'"
}

/// How the service reaches an app the desktop way (the Desktop Entry
/// Specification's D-Bus activation): `ActivateAction(action,
/// [<(task, request_id)>], {})` of `org.freedesktop.Application` on the
/// object path made from the app id.
public enum DesktopActivation {
    public static let interface = "org.freedesktop.Application"
    /// The action a background fetch is delivered as.
    public static let action = "background-fetch"

    /// `/` then the app id with `.` turned into `/` and `-` into `_`
    /// (`org.example.Feed-Reader` → `/org/example/Feed_Reader`).
    public static func objectPath(forAppID appID: String) -> String {
        "/" + String(appID.map { $0 == "." ? "/" : $0 == "-" ? "_" : $0 })
    }
}
