import Foundation
import Testing

@testable import BackgroundFetchCore

@Suite(.timeLimit(.minutes(1)))
struct DaemonConfigTests {
    @Test func defaultsMatchTheContract() throws {
        let defaults = DaemonConfig()
        #expect(defaults.minimumIntervalFloor == 60)
        #expect(defaults.fetchTimeout == 30)
        #expect(defaults.tasksPerApp == 64)
        #expect(defaults.tasksPerUser == 1024)
        #expect(defaults.restrictedApps.isEmpty)
        #expect(try DaemonConfig.parse("") == defaults)
        #expect(try DaemonConfig.parse("# only a comment\n\n; another\n[Limits]\n") == defaults)
    }

    @Test func fullFile() throws {
        let text = """
            # bgfetchd configuration
            [Scheduling]
            MinimumIntervalFloor = 120
            FetchTimeout=45

            ; limits
              [Limits]
            TasksPerApp=8
            TasksPerUser=100

            [Apps]
            # the administrator's policy
            Restricted= org.example.Tracker ;org.example.Miner;;
            """
        let config = try DaemonConfig.parse(text)
        #expect(config.minimumIntervalFloor == 120)
        #expect(config.fetchTimeout == 45)
        #expect(config.tasksPerApp == 8)
        #expect(config.tasksPerUser == 100)
        #expect(config.restrictedApps == ["org.example.Tracker", "org.example.Miner"])
    }

    @Test func crlfLineEndingsAndRangeEdges() throws {
        let text = "[Scheduling]\r\nMinimumIntervalFloor=604800\r\nFetchTimeout=1\r\n"
            + "[Limits]\r\nTasksPerUser=10000000\r\n"
        let config = try DaemonConfig.parse(text)
        #expect(config.minimumIntervalFloor == 604_800)
        #expect(config.fetchTimeout == 1)
        #expect(config.tasksPerUser == 10_000_000)
    }

    @Test(arguments: [
        ("[Scheduling]\nMinimumIntervalFloor=60\nFoo=1\n",
         "line 3: unknown key 'Foo' in section [Scheduling]"),
        ("# header\n[Network]\n", "line 2: unknown section [Network]"),
        ("FetchTimeout=30\n", "line 1: key 'FetchTimeout' comes before any [Section] header"),
        ("[Limits]\n\nTasksPerApp\n", "line 3: expected 'Key=Value' or '[Section]', got 'TasksPerApp'"),
        ("[Limits\n", "line 1: malformed section header '[Limits'"),
        ("[Apps]\n=org.example.A\n", "line 2: missing key before '=' in '=org.example.A'"),
        ("[Limits]\nFetchTimeout=30\n", "line 2: unknown key 'FetchTimeout' in section [Limits]"),
        ("[Scheduling]\nFetchTimeout=3601\n",
         "line 2: invalid value '3601' for FetchTimeout: expected an integer from 1 to 3600"),
        ("[Scheduling]\n#\nMinimumIntervalFloor=0\n",
         "line 3: invalid value '0' for MinimumIntervalFloor: expected an integer from 1 to 604800"),
        ("[Scheduling]\nMinimumIntervalFloor=-5\n",
         "line 2: invalid value '-5' for MinimumIntervalFloor: expected an integer from 1 to 604800"),
        ("[Limits]\nTasksPerApp=ten\n",
         "line 2: invalid value 'ten' for TasksPerApp: expected an integer from 1 to 10000000"),
        ("[Limits]\nTasksPerUser=\n",
         "line 2: invalid value '' for TasksPerUser: expected an integer from 1 to 10000000"),
        ("[Limits]\nTasksPerUser=99999999999999999999999\n",
         "line 2: invalid value '99999999999999999999999' for TasksPerUser: expected an integer from 1 to 10000000"),
    ])
    func errorsNameTheLineAndProblem(text: String, message: String) {
        #expect(throws: DaemonConfigError(description: message)) {
            try DaemonConfig.parse(text)
        }
    }

    @Test func loadReadsAFileAndNamesItInErrors() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("bgfetch-config-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let good = dir.appendingPathComponent("good.conf")
        try "[Apps]\nRestricted=org.example.Tracker\n".write(to: good, atomically: true, encoding: .utf8)
        #expect(try DaemonConfig.load(path: good.path).restrictedApps == ["org.example.Tracker"])

        let bad = dir.appendingPathComponent("bad.conf")
        try "[Scheduling]\n\n\nBogus=1\n".write(to: bad, atomically: true, encoding: .utf8)
        #expect(throws: DaemonConfigError(
            description: "\(bad.path): line 4: unknown key 'Bogus' in section [Scheduling]")) {
            try DaemonConfig.load(path: bad.path)
        }

        let missing = dir.appendingPathComponent("missing.conf").path
        #expect(throws: DaemonConfigError(description: "\(missing): cannot read: No such file or directory")) {
            try DaemonConfig.load(path: missing)
        }

        let error = #expect(throws: DaemonConfigError.self) { try DaemonConfig.load(path: dir.path) }
        #expect(error?.description.hasPrefix("\(dir.path): cannot read: ") == true)
        #expect(error?.description.contains("\n") == false)
    }
}
