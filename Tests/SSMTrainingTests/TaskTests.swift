import Foundation
import Testing
import SSMKit
@testable import SSMTraining

@Suite("Tasks")
struct TaskTests {
    @Test("selective copying and copying: the targets are the data tokens in order, at the k markers")
    func copying() throws {
        for kind in [TaskKind.copying, .selectiveCopying] {
            let task = try TrainingTask(kind, length: 40, vocabulary: 10, tokensToCopy: 5)
            let b = task.trainingBatch(size: 7, seed: 3, index: 1)
            #expect(b.tokens! == task.trainingBatch(size: 7, seed: 3, index: 1).tokens!, "a pure function of (seed, index)")
            #expect(b.tokens! != task.trainingBatch(size: 7, seed: 3, index: 2).tokens!)
            for s in 0 ..< 7 {
                let row = Array(b.tokens![s * 40 ..< (s + 1) * 40]), targets = Array(b.targets[s * 40 ..< (s + 1) * 40])
                let data = row.prefix(35).filter { $0 >= 2 }
                #expect(data.count == 5 && row.suffix(5).allSatisfy { $0 == 1 })
                #expect(targets.suffix(5).map { Int($0) } == data)
                #expect(targets.prefix(35).allSatisfy { $0 == -1 })
                if kind == .copying { #expect(Array(row.prefix(5)) == data) }
            }
        }
        #expect(throws: SSMError.self) { try TrainingTask(.selectiveCopying, length: 9, tokensToCopy: 5) }
    }

    @Test("induction heads: the target is the token after the first trigger; adding: the target is the sum of the marked values")
    func inductionAndAdding() throws {
        let task = try TrainingTask(.inductionHeads, length: 30, vocabulary: 8)
        let b = task.trainingBatch(size: 5, seed: 1, index: 0)
        for s in 0 ..< 5 {
            let row = Array(b.tokens![s * 30 ..< (s + 1) * 30])
            let trigger = try #require(row.firstIndex(of: 1))
            #expect(trigger < 28 && row[29] == 1 && row.filter { $0 == 1 }.count == 2)
            #expect(Int(b.targets[s * 30 + 29]) == row[trigger + 1])
        }
        let adding = try TrainingTask(.adding, length: 20)
        let a = adding.trainingBatch(size: 4, seed: 2, index: 0)
        for s in 0 ..< 4 {
            var sum = 0.0, marks = 0
            for t in 0 ..< 20 where a.features![(s * 20 + t) * 2 + 1] == 1 { sum += a.features![(s * 20 + t) * 2]; marks += 1 }
            #expect(marks == 2 && abs(sum - a.targets[s]) <= 1e-15)
        }
    }

    @Test("digits: 1797 images of 64 pixels in [0, 1], a fixed 1438 / 359 split")
    func digits() throws {
        let path = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let task = try TrainingTask(.digits, digitsPath: "/\(path)/Sources/SSMTraining/Resources/digits.safetensors")
        let v = task.validationBatch(size: 1, seed: 0)
        #expect(v.batch == 359 && v.length == 64)
        #expect(v.features!.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(Set(v.targets) == Set((0 ..< 10).map(Double.init)))
        #expect(task.trainingBatch(size: 16, seed: 0, index: 0).features!.count == 16 * 64)
        #expect(throws: SSMError.self) { try TrainingTask(.digits, digitsPath: "/nonexistent/digits.safetensors") }
        // Without a path: the copy bundled as SSMTraining's resource, the same data.
        let bundled = try TrainingTask(.digits).validationBatch(size: 1, seed: 0)
        #expect(bundled.features == v.features && bundled.targets == v.targets)
        #expect(throws: SSMError.self) { try TrainingTask(.digits, length: 32, digitsPath: "/\(path)/Sources/SSMTraining/Resources/digits.safetensors") }
        // A file whose images are all in one split is refused (no batch could be drawn, or the
        // validation would count nothing).
        for splitValue in [0.0, 1.0] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("digits-one-split-\(Int(splitValue)).safetensors").path
            defer { try? FileManager.default.removeItem(atPath: file) }
            try SafeTensorsFile.write([("images", .float64(Tensor(shape: [3, 64], scalars: [Double](repeating: 1, count: 192)))),
                                   ("labels", .float64(Tensor(shape: [3], scalars: [1, 2, 3]))),
                                   ("split", .float64(Tensor(shape: [3], scalars: [Double](repeating: splitValue, count: 3))))], to: file)
            #expect(throws: SSMError.value(argument: "digitsPath", expected: "training images (split 0) and validation images (split ≠ 0) in \(file), "
                                           + (splitValue == 0 ? "got 3 and 0" : "got 0 and 3"))) {
                try TrainingTask(.digits, digitsPath: file)
            }
        }
    }
}

@Suite("Task streams")
struct TaskStreamTests {
    @Test("consecutive training batches are unrelated (no shifted copies of one stream)")
    func batchesAreIndependent() throws {
        let task = try TrainingTask(.copying, length: 32, vocabulary: 16, tokensToCopy: 8)
        let a = task.trainingBatch(size: 4, seed: 0, index: 1).tokens!, b = task.trainingBatch(size: 4, seed: 0, index: 2).tokens!
        // Compare the data tokens of batch 1 with those of batch 2 at every shift: a shifted
        // stream would match at one shift almost everywhere; independent ones match ~1/14.
        let da = a.filter { $0 >= 2 }, db = b.filter { $0 >= 2 }
        for shift in 0 ..< 8 {
            let matches = zip(da.dropFirst(shift), db).filter { $0 == $1 }.count
            #expect(Double(matches) / Double(db.count) < 0.4, "shift \(shift): \(matches) of \(db.count) equal")
        }
    }
}
