import CTestKit
import Glibc

/// Steps the machine's wall clock without changing it, for tests of what
/// hears a clock step.
public enum WallClockStep {
    /// +1 ns, then −1 ns: two clock sets, no net change. Returns why it
    /// could not (it needs CAP_SYS_TIME), or nil.
    public static func byNothing() -> String? {
        let error = ctestkit_step_wall_clock_by_nothing()
        return error == 0 ? nil : "adjtimex: \(String(cString: strerror(error)))"
    }
}
