import CSSMKitMPI
import SSMKit
#if canImport(Glibc)
import Glibc
#endif

/// The processes of a data-parallel run and the collective operations training needs: every
/// rank holds a full copy of the model, takes its share of each global batch, and adds its
/// gradients to the others' (``allReduceSum(_:)``) before the identical optimizer step.
///
/// Two conformances: ``SingleProcess`` (the default: one rank, every operation a no-op) and
/// ``MPICommunicator`` (the ranks of an `mpirun` job, over OpenMPI). A communicator is used by
/// one thread at a time, and every rank must make the same calls in the same order. A rank
/// that stops making them (an error on that rank alone) must end the job, or the others wait:
/// `ssm` calls ``MPICommunicator/abortJobIfJoined(_:)`` on any error, and a program of your own
/// should do the same.
public protocol Communicator: Sendable {
    /// This process's index, 0 ..< ``size``.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces `buffer` on every rank by the element-wise sum of all ranks' buffers.
    func allReduceSum<T: SSMScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws(SSMError)
    /// Replaces `buffer` on every rank by rank `root`'s.
    func broadcast<T: SSMScalar>(_ buffer: UnsafeMutableBufferPointer<T>, from root: Int) throws(SSMError)
    /// Returns when every rank has called it.
    func barrier() throws(SSMError)
}

extension Communicator {
    /// ``allReduceSum(_:)`` of a few values, such as a loss and its counts.
    public func allReduceSum(_ values: [Double]) throws(SSMError) -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { (b: inout UnsafeMutableBufferPointer<Double>) throws(SSMError) in try allReduceSum(b) }
        return v
    }

    /// The rows `share` of `count` items that this rank takes: contiguous, in rank order,
    /// sizes differing by at most one (the first `count % size` ranks take one more).
    public func share(of count: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return start ..< start + base + (rank < extra ? 1 : 0)
    }
}

/// One process: rank 0 of 1; the collectives leave every buffer as it is.
public struct SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum<T: SSMScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws(SSMError) {}
    public func broadcast<T: SSMScalar>(_ buffer: UnsafeMutableBufferPointer<T>, from root: Int) throws(SSMError) {
        guard root == 0 else { throw SSMError.value(argument: "root", expected: "rank 0 of a single process, got \(root)") }
    }
    public func barrier() throws(SSMError) {}
}

/// The ranks of an MPI job (`mpirun -np N …`), over OpenMPI's `MPI_COMM_WORLD`.
///
/// libmpi is loaded when ``world()`` is first called, not linked: SSMKit builds and runs on a
/// machine without OpenMPI, and only a job that asks for MPI needs it. MPI is initialized once
/// per process (MPI_THREAD_FUNNELED: the calling thread alone uses MPI) and finalized at exit.
/// Errors inside MPI end the whole job (MPI's default handler), and so does a rank that dies.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    private init(rank: Int, size: Int) { (self.rank, self.size) = (rank, size) }

    private static let shared = Locked<MPICommunicator?>(nil)

    /// The world communicator of this job (the same object on every call).
    /// - Throws: `SSMError` when libmpi cannot be loaded or initialized.
    public static func world() throws(SSMError) -> MPICommunicator {
        try shared.withLock { (shared: inout MPICommunicator?) throws(SSMError) -> MPICommunicator in
            if let shared { return shared }
            let world = try initialize()
            shared = world
            return world
        }
    }

    private static func initialize() throws(SSMError) -> MPICommunicator {
        var message = [CChar](repeating: 0, count: 512)
        guard ssm_mpi_load(&message, Int32(message.count)) == 0 else {
            throw SSMError.option(name: "mpi", expected: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var rank: Int32 = 0, size: Int32 = 0
        let status = ssm_mpi_init(&rank, &size)
        guard status != SSM_MPI_SINGLE_THREADED else {
            throw SSMError.option(name: "mpi", expected: "an MPI library that supports MPI_THREAD_FUNNELED (this process has worker threads)")
        }
        guard status == 0 else { throw SSMError.option(name: "mpi", expected: "MPI_Init to succeed (error \(status))") }
        return MPICommunicator(rank: Int(rank), size: Int(size))
    }

    /// Whether this process was started by `mpirun` (OpenMPI's launcher sets
    /// `OMPI_COMM_WORLD_SIZE`; a plain run is not an MPI job).
    public static var isLaunchedByMPI: Bool { getenv("OMPI_COMM_WORLD_SIZE") != nil }

    public func allReduceSum<T: SSMScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws(SSMError) {
        guard T.self == Float.self || T.self == Double.self else {
            throw SSMError.value(argument: "buffer", expected: "Float or Double values to sum over MPI, got \(T.self)")
        }
        guard size > 1, let base = buffer.baseAddress else { return }
        let status = ssm_mpi_allreduce_sum(base, buffer.count, T.self == Double.self ? 1 : 0)
        guard status == 0 else { throw SSMError.value(argument: "MPI_Allreduce", expected: "success, got error \(status)") }
    }

    public func broadcast<T: SSMScalar>(_ buffer: UnsafeMutableBufferPointer<T>, from root: Int) throws(SSMError) {
        guard (0 ..< size).contains(root) else { throw SSMError.value(argument: "root", expected: "a rank in 0 ..< \(size), got \(root)") }
        guard size > 1, let base = buffer.baseAddress else { return }
        let status = ssm_mpi_broadcast(base, buffer.count * MemoryLayout<T>.stride, Int32(root))
        guard status == 0 else { throw SSMError.value(argument: "MPI_Bcast", expected: "success, got error \(status)") }
    }

    public func barrier() throws(SSMError) {
        let status = ssm_mpi_barrier()
        guard status == 0 else { throw SSMError.value(argument: "MPI_Barrier", expected: "success, got error \(status)") }
    }

    /// Ends every rank of the job with exit status `code` (MPI_Abort).
    public func abort(_ code: Int32) -> Never {
        ssm_mpi_abort(code)
        fatalError("MPI_Abort returned")
    }

    /// Ends the whole job with `code` when this process joined one (``world()`` was called);
    /// otherwise returns. A rank that fails on its own (say, rank 0 cannot write a checkpoint)
    /// must not simply exit: MPI_Finalize would wait for ranks that wait for it.
    public static func abortJobIfJoined(_ code: Int32) {
        guard let world = shared.withLock({ $0 }), world.size > 1 else { return }
        world.abort(code)
    }
}
