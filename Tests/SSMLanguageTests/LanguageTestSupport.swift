import Foundation
@testable import SSMKit

/// The pretrained-model fixtures (Tests/Fixtures/pretrained, made by
/// scripts/pretrained/make_fixtures.py with transformers and tokenizers).
let pretrainedFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/pretrained").path

/// A JSON fixture file parsed (a failing test when it is missing, never a skipped one).
func fixtureJSON(_ name: String) throws -> JSONValue {
    try JSONValue.parse(FileIO.readAll(pretrainedFixtures + "/" + name))
}

/// A fresh path in the temporary directory (not created).
func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "ssmkit-\(UInt32.random(in: 0 ... .max))-" + name
}

/// Removes a file, ignoring a missing one.
@discardableResult
func unlinkPath(_ path: String) -> Int32 { unlink(path) }
