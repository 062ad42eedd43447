@testable import Canon
import Testing

@Suite("Batch sizes")
struct BatchSizerTests {
    @Test func fullQuickBatchesDoubleToTheCapSlowOnesHalveToTheMinimum() {
        var sizer = BatchSizer(minimum: 100, maximum: 1_000, target: .milliseconds(500))
        #expect(sizer.current == 100)
        #expect(sizer.ahead == 200)
        for expected in [200, 400, 800, 1_000, 1_000] {
            sizer.record(full: true, took: .milliseconds(10))
            #expect(sizer.current == expected)
        }
        // A batch that was not full (the agent is live) or took between half the target and the target changes nothing.
        sizer.record(full: false, took: .milliseconds(10))
        sizer.record(full: true, took: .milliseconds(300))
        #expect(sizer.current == 1_000)
        for expected in [500, 250, 125, 100, 100] {
            sizer.record(full: true, took: .seconds(1))
            #expect(sizer.current == expected)
        }
        sizer.record(full: true, took: .zero)
        sizer.reset()
        #expect(sizer.current == 100)
        // A maximum below the minimum is the minimum.
        #expect(BatchSizer(minimum: 50, maximum: 10, target: .seconds(1)).maximum == 50)
    }
}
