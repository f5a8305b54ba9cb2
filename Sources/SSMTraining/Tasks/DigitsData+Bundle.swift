import Foundation

extension DigitsData {
    /// The folder SwiftPM copies SSMTraining's resources into, beside the built executable.
    static let bundleName = "SSMKit_SSMTraining.resources"

    /// The bundled digits file, if it can be found. SwiftPM's own `Bundle.module` stops the
    /// process when its folder is missing (an executable copied away from its build folder), so
    /// the same places are searched here and a missing folder is reported as an error instead:
    /// the main bundle's folder, then the folder of the running executable.
    static var bundledPath: String? {
        var folders = [Bundle.main.bundleURL]
        if let executable = Bundle.main.executableURL { folders.append(executable.deletingLastPathComponent()) }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        folders.append(exe.deletingLastPathComponent())
        for folder in folders {
            let file = folder.appendingPathComponent(bundleName).appendingPathComponent("digits.safetensors").path
            if FileManager.default.isReadableFile(atPath: file) { return file }
        }
        return nil
    }
}
