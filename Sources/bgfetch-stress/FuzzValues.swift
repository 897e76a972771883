import TestKit
import DBus

/// One complete D-Bus type, parsed from a signature.
indirect enum WireType: Sendable, Equatable {
    case basic(Character)
    case array(WireType)
    case dict(WireType, WireType)
    case structure([WireType])
    case variant

    var code: String {
        switch self {
        case .basic(let c): String(c)
        case .array(let t): "a" + t.code
        case .dict(let k, let v): "a{" + k.code + v.code + "}"
        case .structure(let fields): "(" + fields.map(\.code).joined() + ")"
        case .variant: "v"
        }
    }

    /// Parses a whole signature into its complete types (nil if malformed).
    static func parse(_ signature: String) -> [WireType]? {
        var chars = Array(signature)[...]
        var types: [WireType] = []
        while !chars.isEmpty {
            guard let type = parseOne(&chars) else { return nil }
            types.append(type)
        }
        return types
    }

    private static func parseOne(_ chars: inout ArraySlice<Character>) -> WireType? {
        guard let c = chars.popFirst() else { return nil }
        switch c {
        case "y", "b", "n", "q", "i", "u", "x", "t", "d", "s", "o", "g", "h": return .basic(c)
        case "v": return .variant
        case "a":
            if chars.first == "{" {
                chars.removeFirst()
                guard let key = parseOne(&chars), let value = parseOne(&chars), chars.popFirst() == "}" else { return nil }
                return .dict(key, value)
            }
            return parseOne(&chars).map { .array($0) }
        case "(":
            var fields: [WireType] = []
            while chars.first != ")" {
                guard !chars.isEmpty, let field = parseOne(&chars) else { return nil }
                fields.append(field)
            }
            chars.removeFirst()
            return fields.isEmpty ? nil : .structure(fields)
        default: return nil
        }
    }
}

/// Values for fuzzing: boundary values of each type, and random ones.
enum FuzzValues {
    static let huge = String(repeating: "z", count: 50_000)
    static let name255 = String(repeating: "n", count: 250) + "A9_.:"
    static let name256 = String(repeating: "n", count: 256)

    static let strings: [String] = [
        "", "a", "fuzz", name255, name256, huge, "with space", "slash/y", "tab\there", "ünïcödé", "😀", "*", "0/fuzz",
        "4294967296/fuzz", "-1/x", "../..", "a;b", "\u{7f}", "org.bgfetch.BackgroundFetch1", ":1.0", "minimumInterval",
        String(repeating: "é", count: 200), String(repeating: ".", count: 255), "NewData",
    ]

    /// Every boundary value of `type` (containers: a few shapes).
    static func boundary(_ type: WireType) -> [DBusValue] {
        switch type {
        case .basic(let c):
            switch c {
            case "y": return [.byte(0), .byte(1), .byte(255)]
            case "b": return [.bool(false), .bool(true)]
            case "n": return [.int16(0), .int16(-1), .int16(.min), .int16(.max)]
            case "q": return [.uint16(0), .uint16(.max)]
            case "i": return [.int32(0), .int32(-1), .int32(.min), .int32(.max)]
            case "u": return [0, 1, 2, 3, 4, 60, 604_800, 604_801, .max].map { .uint32($0) }
            case "x": return [.int64(0), .int64(-1), .int64(.min), .int64(.max)]
            case "t": return [0, 1, 2, 1 << 32, UInt64(Int64.max), 1 << 63, .max].map { .uint64($0) }
            case "d": return [0, -0.0, 1e308, -1e308, .nan, .infinity, -.infinity, .leastNonzeroMagnitude].map { .double($0) }
            case "s": return strings.map { .string($0) }
            case "o": return ["/", "/org/bgfetch/BackgroundFetch1", "/" + Array(repeating: "p", count: 200).joined(separator: "/")].map { .objectPath($0) }
            case "g": return ["", "a{sv}", "((((((((((i))))))))))", "v"].map { .signature($0) }
            default: return []
            }
        case .variant:
            return variants
        case .dict(.basic("s"), .variant):
            return optionDictionaries
        case .dict(let key, let value):
            return [
                .array(element: "{\(key.code)\(value.code)}", []),
                .array(element: "{\(key.code)\(value.code)}", [.dictEntry(typical(key), typical(value))]),
            ]
        case .array(let element):
            return [
                .array(element: element.code, []),
                .array(element: element.code, [typical(element)]),
                .array(element: element.code, Array(repeating: typical(element), count: 1000)),
            ]
        case .structure(let fields):
            return [.structure(fields.map(typical))]
        }
    }

    /// A plausible, valid-looking value of `type`.
    static func typical(_ type: WireType) -> DBusValue {
        switch type {
        case .basic(let c):
            switch c {
            case "y": return .byte(1)
            case "b": return .bool(false)
            case "n": return .int16(1)
            case "q": return .uint16(1)
            case "i": return .int32(1)
            case "u": return .uint32(60)
            case "x": return .int64(1)
            case "t": return .uint64(1)
            case "d": return .double(1)
            case "s": return .string("fuzz")
            case "o": return .objectPath("/")
            case "g": return .signature("s")
            default: return .string("fuzz")
            }
        case .variant: return .variant(.uint32(60))
        case .dict(let key, let value): return .array(element: "{\(key.code)\(value.code)}", [])
        case .array(let element): return .array(element: element.code, [])
        case .structure(let fields): return .structure(fields.map(typical))
        }
    }

    /// A random value of `type`: a boundary value, or a random container.
    static func random(_ type: WireType, _ rng: inout SplitMix64, depth: Int = 0) -> DBusValue {
        switch type {
        case .basic(let c):
            if c == "s", Int.random(in: 0..<4, using: &rng) == 0 { return .string(randomName(&rng)) }
            return boundary(type).randomElement(using: &rng) ?? typical(type)
        case .variant:
            if depth < 3, Bool.random(using: &rng) {
                return .variant(random(randomType(&rng, depth: depth + 1), &rng, depth: depth + 1))
            }
            return variants.randomElement(using: &rng)!
        case .dict(.basic("s"), .variant) where Bool.random(using: &rng):
            return optionDictionaries.randomElement(using: &rng)!
        case .dict(let key, let value):
            let count = Int.random(in: 0...3, using: &rng)
            return .array(
                element: "{\(key.code)\(value.code)}",
                (0..<count).map { _ in .dictEntry(random(key, &rng, depth: depth + 1), random(value, &rng, depth: depth + 1)) })
        case .array(let element):
            let count = Int.random(in: 0...3, using: &rng)
            return .array(element: element.code, (0..<count).map { _ in random(element, &rng, depth: depth + 1) })
        case .structure(let fields):
            return .structure(fields.map { random($0, &rng, depth: depth + 1) })
        }
    }

    /// A random complete type (for variants and wrong signatures).
    static func randomType(_ rng: inout SplitMix64, depth: Int = 0) -> WireType {
        let basics: [Character] = ["y", "b", "n", "q", "i", "u", "x", "t", "d", "s", "o", "g"]
        switch depth > 2 ? 0 : Int.random(in: 0..<8, using: &rng) {
        case 5: return .array(randomType(&rng, depth: depth + 1))
        case 6: return .dict(.basic("s"), Bool.random(using: &rng) ? .variant : randomType(&rng, depth: depth + 1))
        case 7: return .structure((0..<Int.random(in: 1...3, using: &rng)).map { _ in randomType(&rng, depth: depth + 1) })
        default: return .basic(basics.randomElement(using: &rng)!)
        }
    }

    /// A task-name-like string: mostly allowed characters, sometimes not.
    static func randomName(_ rng: inout SplitMix64) -> String {
        let allowed = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:")
        let other = Array(" /\\\"'<>&;,=*?!@#$%^()[]{}|~`é😀\u{1}\u{7f}")
        let length = [0, 1, 8, 64, 254, 255, 256, 300].randomElement(using: &rng)!
        return String((0..<length).map { _ in
            Int.random(in: 0..<20, using: &rng) == 0 ? other.randomElement(using: &rng)! : allowed.randomElement(using: &rng)!
        })
    }

    /// A variant nested `depth` deep around `inner`.
    static func nested(_ depth: Int, _ inner: DBusValue) -> DBusValue {
        (0..<depth).reduce(inner) { value, _ in .variant(value) }
    }

    static let variants: [DBusValue] = [
        .variant(.uint32(0)), .variant(.uint32(.max)), .variant(.int32(-1)), .variant(.bool(true)), .variant(.string("")),
        .variant(.string(huge)), .variant(.uint64(.max)), .variant(.double(.nan)), .variant(.byte(255)),
        .variant(.array(element: "s", [])), .variant(.array(element: "v", [.variant(.string("x"))])),
        .variant(.vardict(["k": .uint32(1)])), .variant(.structure([.string("a"), .uint32(1)])),
        nested(30, .string("deep")), nested(30, .uint32(60)),
        .variant(.array(element: "av", [.array(element: "v", [nested(20, .bool(true))])])),
    ]

    /// `a{sv}` shapes: empty, the known options right and wrong, unknown and odd keys.
    static let optionDictionaries: [DBusValue] = {
        var list: [DBusValue] = [
            .vardict([:]),
            .vardict(["minimumInterval": .uint32(60), "stopOnTerminate": .bool(false), "startOnBoot": .bool(true)]),
            .vardict(["minimumInterval": .uint32(0)]), .vardict(["minimumInterval": .uint32(.max)]),
            .vardict(["minimumInterval": .uint32(604_800)]), .vardict(["minimumInterval": .uint32(604_801)]),
            .vardict(["minimumInterval": .int32(60)]), .vardict(["minimumInterval": .uint64(60)]),
            .vardict(["minimumInterval": .string("60")]), .vardict(["stopOnTerminate": .string("no")]),
            .vardict(["startOnBoot": .bool(true)]), .vardict(["bogus": .uint32(1)]), .vardict(["": .bool(true)]),
            .vardict([name256: .bool(true)]), .vardict([huge: .bool(true)]), .vardict(["requiresNetwork": .bool(true)]),
            .vardict(["minimumInterval": nested(30, .uint32(60))]), .vardict(["minimumInterval": .variant(.uint32(60))]),
            .vardict(["stopOnTerminate": .array(element: "b", [.bool(false)])]),
        ]
        // A key given twice.
        list.append(.array(element: "{sv}", [
            .dictEntry(.string("minimumInterval"), .variant(.uint32(60))),
            .dictEntry(.string("minimumInterval"), .variant(.uint32(120))),
        ]))
        // Many unknown keys.
        list.append(.vardict(Dictionary(uniqueKeysWithValues: (0..<500).map { ("key\($0)", DBusValue.uint32(UInt32($0))) })))
        return list
    }()
}
