import SSMKit

/// The safetensors files of a Hugging Face model folder: `model.safetensors`, or the shards
/// that `model.safetensors.index.json` lists (its `weight_map` from tensor name to file). Each
/// file is mapped, not read; tensors are converted straight into the model's buffer.
struct CheckpointFiles {
    let folder: String
    /// Every tensor's name → (its file, the entry).
    private(set) var tensors: [String: (file: SafeTensorsFile, entry: SafeTensorsFile.Entry)] = [:]

    init(folder: String) throws(PretrainedError) {
        self.folder = folder
        let single = folder + "/model.safetensors", index = folder + "/model.safetensors.index.json"
        if FileIO.isRegularFile(single) {
            try add(single)
        } else if FileIO.isRegularFile(index) {
            let json = try JSONFile(index)
            guard let map = json.root["weight_map"]?.object else {
                throw .field(file: index, field: "weight_map", expected: "an object from tensor names to shard files")
            }
            var shards: [String: Set<String>] = [:]
            for (name, value) in map {
                guard let file = value.string, !file.isEmpty, !file.contains("/"), file != "..", file != "." else {
                    throw .field(file: index, field: "weight_map.\(name)", expected: "a file name in the same folder")
                }
                shards[file, default: []].insert(name)
            }
            for (file, names) in shards.sorted(by: { $0.key < $1.key }) {
                try add(folder + "/" + file)
                for name in names where tensors[name]?.file.source != folder + "/" + file {
                    throw .tensor(file: index, tensor: name, expected: "to be stored in \(file), as weight_map says")
                }
            }
            let listed = Set(map.map(\.key))
            if let stray = tensors.keys.sorted().first(where: { !listed.contains($0) }) {
                throw .tensor(file: index, tensor: stray, expected: "listed in weight_map (a shard holds it)")
            }
        } else {
            throw .unreadable(path: folder, reason: "no model.safetensors or model.safetensors.index.json (a pytorch_model.bin must be converted first: scripts/pretrained/convert_bin.py)")
        }
    }

    private mutating func add(_ path: String) throws(PretrainedError) {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw .safetensors(error) }
        for e in file.entries {
            if let other = tensors[e.name] {
                throw .tensor(file: path, tensor: e.name, expected: "one copy, but \(other.file.source) holds it too")
            }
            tensors[e.name] = (file, e)
        }
    }

    /// The index of the first NaN or infinity in `x`: one branch-free pass first.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    static func firstNonFinite<T: BinaryFloatingPoint>(_ x: UnsafeBufferPointer<T>) -> Int? {
        var any = false
        for v in x { any = any || !v.isFinite }
        return any ? x.firstIndex { !$0.isFinite } : nil
    }

    /// Converts tensor `name` of shape `shape` into `destination`.
    @_specialize(where T == Float)
    @_specialize(where T == Double)
    func read<T: SafeTensorsScalar>(_ name: String, shape: [Int], into destination: UnsafeMutableBufferPointer<T>) throws(PretrainedError) {
        guard let (file, entry) = tensors[name] else {
            throw .tensor(file: folder, tensor: name, expected: "present, of shape \(shape)")
        }
        guard entry.shape == shape else {
            throw .tensor(file: file.source, tensor: name, expected: "shape \(shape), got \(entry.shape)")
        }
        guard entry.dtype.isFloatingPoint else {
            throw .tensor(file: file.source, tensor: name, expected: "a floating-point dtype (F32, F16, BF16, F64), got \(entry.dtype.rawValue)")
        }
        do { try file.read(name, into: destination) } catch { throw .safetensors(error) }
        if let bad = Self.firstNonFinite(UnsafeBufferPointer(destination)) {
            throw .tensor(file: file.source, tensor: name, expected: "finite values (element \(bad) is \(destination[bad]))")
        }
    }
}
