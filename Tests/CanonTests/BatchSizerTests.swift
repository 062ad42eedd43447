@testable import Canon
import Testing

@Suite("Batch sizes")
struct BatchSizerTests {
    @Test func fullQuickBatchesGrowToTheCapSlowOnesHalveToTheMinimum() {
        var sizer = BatchSizer(minimum: 100, maximum: 1_000, target: .milliseconds(500))
        #expect(sizer.current == 100)
        #expect(sizer.ahead == 200)
        // A batch at 40% of the target doubles; much quicker ones grow toward what would take
        // half the target (at most 8 times), never past the maximum.
        for (took, expected) in [(200, 200), (50, 1_000), (10, 1_000)] {
            sizer.record(full: true, took: .milliseconds(took))
            #expect(sizer.current == expected)
        }
        #expect(sizer.ahead == 1_000)
        // A batch that was not full (the agent is live) or took between half the target and the target changes nothing.
        sizer.record(full: false, took: .milliseconds(10))
        sizer.record(full: true, took: .milliseconds(300))
        #expect(sizer.current == 1_000)
        for expected in [500, 250, 125, 100, 100] {
            sizer.record(full: true, took: .seconds(1))
            #expect(sizer.current == expected)
        }
        // 100 events in 10 ms: 250 ms would take 2,500, at most 8 times 100.
        sizer.record(full: true, took: .milliseconds(10))
        #expect(sizer.current == 800)
        sizer.record(full: true, took: .seconds(1))
        // 400 events in 80 ms: 250 ms would take 1,250, three times 400, past the maximum.
        sizer.record(full: true, took: .milliseconds(80))
        #expect(sizer.current == 1_000)
        sizer.record(full: true, took: .zero)
        #expect(sizer.current == 1_000)
        sizer.reset()
        #expect(sizer.current == 100)
        sizer.record(full: true, took: .zero)
        #expect(sizer.current == 800)
        // A maximum below the minimum is the minimum.
        #expect(BatchSizer(minimum: 50, maximum: 10, target: .seconds(1)).maximum == 50)
    }
}
