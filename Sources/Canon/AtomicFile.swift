import Foundation

/// Replaces a file in one step: the new content goes to a temporary file beside it, which
/// rename(2) then puts in its place, so a reader sees the old file or the new one, never half.
///
/// Foundation's `.atomic` writes do the same through a temporary directory under /tmp, which
/// swift-corelibs-foundation leaves behind (`TemporaryDirectory.XXXXXX`, one per write).
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        try data.write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            let code = POSIXErrorCode(rawValue: errno) ?? .EIO
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(code, userInfo: [NSFilePathErrorKey: url.path])
        }
    }

    public static func write(_ text: String, toFile path: String) throws {
        try write(Data(text.utf8), to: URL(fileURLWithPath: path))
    }
}
