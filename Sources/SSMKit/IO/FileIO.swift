import CSSMKitFiles
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error reading or writing a file, with the path and the system's reason.
public struct FileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// Whole-file reads and atomic writes through POSIX calls.
package enum FileIO {
    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Reads the whole regular file at `path`.
    package static func readAll(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: path, reason: "cannot open: \(errnoText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, reason: "cannot stat: \(errnoText())") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 { return try readToEnd(fd, path) }
        var bytes = [UInt8](repeating: 0, count: size)
        if let failure = bytes.withUnsafeMutableBytes({ transferAll(fd, $0.baseAddress!, size, at: 0, write: false) }) {
            throw FileError(path: path, reason: failure)
        }
        return bytes
    }

    /// Reads or writes all `bytes` at `offset`, in as many calls as the system needs (a call
    /// moves at most about 2 GiB, and may be interrupted). Returns nil, or why it stopped.
    package static func transferAll(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ bytes: Int, at offset: Int, write: Bool) -> String? {
        var done = 0
        while done < bytes {
            let at = off_t(offset + done)
            let n = write ? pwrite(fd, buffer + done, bytes - done, at) : pread(fd, buffer + done, bytes - done, at)
            if n < 0 {
                if errno == EINTR { continue }
                return "\(write ? "write" : "read") failed at byte \(offset + done): \(errnoText())"
            }
            if n == 0 { return "end of file at byte \(offset + done), \(bytes - done) bytes short" }
            done += n
        }
        return nil
    }

    /// Whether `path` names a regular file (following links).
    package static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Whether `path` names a folder (following links).
    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Reads `fd` until end of file: files whose size the system reports as 0 (/proc), up to
    /// 64 MiB.
    static func readToEnd(_ fd: Int32, _ path: String) throws(FileError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, reason: "read failed: \(errnoText())")
            }
            if n == 0 { return bytes }
            bytes += chunk[0 ..< n]
            guard bytes.count <= 64 << 20 else { throw FileError(path: path, reason: "more than 64 MiB in a file of reported size 0") }
        }
    }

    /// Creates `path` and any missing parents (mode 0755); an existing folder is fine.
    package static func makeDirectories(_ path: String) throws(FileError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o755) != 0, errno != EEXIST {
                throw FileError(path: prefix, reason: "cannot create folder: \(errnoText())")
            }
            prefix += "/"
        }
    }

    /// Writes `chunks` one after the other to a temporary file beside `path`, flushes it, and
    /// renames it over `path`: readers see the old file or the whole new one, never a part.
    package static func writeAtomically(_ chunks: [UInt8]..., to path: String) throws(FileError) {
        let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw FileError(path: path, reason: "cannot create \(temporary): \(errnoText())") }
        var failure: String?
        var offset = 0
        for chunk in chunks where failure == nil && !chunk.isEmpty {
            failure = chunk.withUnsafeBytes { transferAll(fd, UnsafeMutableRawPointer(mutating: $0.baseAddress!), chunk.count, at: offset, write: true) }
            offset += chunk.count
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync failed: \(errnoText())" }
        if close(fd) != 0, failure == nil { failure = "close failed: \(errnoText())" }
        if failure == nil, rename(temporary, path) != 0 { failure = "cannot rename into place: \(errnoText())" }
        if let failure {
            unlink(temporary)
            throw FileError(path: path, reason: failure)
        }
        // The rename itself lasts once the directory entry is on disk.
        _ = ssm_sync_directory(parentDirectory(path))
    }
}

extension FileIO {
    /// Puts the directory `temporary` (complete, its files flushed) in place of `path`
    /// atomically: a reader, or a process killed at any instant, sees the old directory whole or
    /// the new one whole. An existing `path` is exchanged with `temporary` in one
    /// `renameat2(RENAME_EXCHANGE)`; entries of the old directory that the new one lacks and
    /// that are not in `managed` (the names the writer owns) are moved into it; then the old
    /// directory is removed. A missing `path` is a plain rename. On a filesystem without the
    /// exchange (NFS, some FUSE mounts) the old directory is renamed aside first: a crash between
    /// the two renames leaves it whole beside `path`, as `temporary` + `.old`. An unmanaged entry
    /// that cannot be moved into the new directory is left in the old one, which is then kept.
    package static func replaceDirectory(_ path: String, with temporary: String, managed: Set<String>) throws(FileError) {
        _ = ssm_sync_directory(temporary)
        var status = stat()
        if lstat(path, &status) != 0 {
            guard rename(temporary, path) == 0 else { throw FileError(path: path, reason: "cannot rename into place: \(errnoText())") }
        } else {
            guard status.st_mode & S_IFMT == S_IFDIR else { throw FileError(path: path, reason: "exists and is not a directory") }
            var old = temporary
            if ssm_exchange_paths(temporary, path) != 0 {
                guard errno == EINVAL || errno == ENOSYS || errno == ENOTSUP else {
                    throw FileError(path: path, reason: "cannot exchange with the new directory: \(errnoText())")
                }
                old = temporary + ".old"
                guard rename(path, old) == 0 else { throw FileError(path: path, reason: "cannot move the old directory aside: \(errnoText())") }
                guard rename(temporary, path) == 0 else {
                    rename(old, path)
                    throw FileError(path: path, reason: "cannot rename into place: \(errnoText())")
                }
            }
            // `old` now names the previous directory.
            let new = Set(entries(path))
            // A name that cannot be moved stays where it is, and so does the old directory.
            var kept = false
            for name in entries(old) where !new.contains(name) && !managed.contains(name) {
                if rename(old + "/" + name, path + "/" + name) != 0 { kept = true }
            }
            for name in entries(old) where new.contains(name) || managed.contains(name) { unlink(old + "/" + name) }
            if !kept { rmdir(old) }
        }
        _ = ssm_sync_directory(parentDirectory(path))
    }

    /// The folder holding `path` ("." for a bare name).
    package static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The names in a directory (no "." or "..").
    package static func entries(_ directory: String) -> [String] {
        guard let d = opendir(directory) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        // d_name is read in place up to its NUL: a record may be shorter than `dirent` (copying
        // the 256-byte field would read past it, as AddressSanitizer showed).
        let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while let entry = readdir(d) {
            let name = String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }
}

/// Immutable bytes at a stable address: a regular file mapped read-only (`mmap`), or a copy of
/// an array. Freed (unmapped) with the last reference.
package final class ReadOnlyBytes: @unchecked Sendable {
    package let base: UnsafeRawPointer
    package let count: Int
    private let mapped: Bool

    /// Maps the regular file at `path` (an empty file maps nothing).
    package init(mapping path: String) throws(FileError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: path, reason: "cannot open: \(FileIO.errnoText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, reason: "cannot stat: \(FileIO.errnoText())") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, reason: "not a regular file") }
        count = Int(info.st_size)
        guard count > 0 else {
            (base, mapped) = (UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8)), false)
            return
        }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FileError(path: path, reason: "cannot map: \(FileIO.errnoText())")
        }
        (base, mapped) = (UnsafeRawPointer(p), true)
    }

    /// A copy of `bytes`.
    package init(copying bytes: [UInt8]) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 16)
        bytes.withUnsafeBytes { if let source = $0.baseAddress { p.copyMemory(from: source, byteCount: bytes.count) } }
        (base, count, mapped) = (UnsafeRawPointer(p), bytes.count, false)
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), count) } else { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }
}
