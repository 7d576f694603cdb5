import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** The engine's Prometheus metrics. */
export class EngineMetrics {
  readonly eventsIn: Counter<'stream'>
  readonly deadLetters: Counter<'stream' | 'reason'>
  readonly activations: Counter<'campaign' | 'cell' | 'status'>
  readonly outputs: Counter<'channel' | 'status'>
  readonly latency: Histogram<'stream'>
  readonly lag: Gauge<'topic' | 'partition'>
  readonly batches: Counter<'result'>
  readonly campaignErrors: Counter<'campaign'>

  constructor(registry: Registry) {
    const reg = [registry]
    this.eventsIn = new Counter({
      name: 'riffle_events_in_total',
      help: 'Events consumed, per stream',
      labelNames: ['stream'],
      registers: reg,
    })
    this.deadLetters = new Counter({
      name: 'riffle_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, per stream and reason',
      labelNames: ['stream', 'reason'],
      registers: reg,
    })
    this.activations = new Counter({
      name: 'riffle_activations_total',
      help: 'Activations per campaign, cell and status',
      labelNames: ['campaign', 'cell', 'status'],
      registers: reg,
    })
    this.outputs = new Counter({
      name: 'riffle_outputs_total',
      help: 'Outputs per channel and status',
      labelNames: ['channel', 'status'],
      registers: reg,
    })
    this.latency = new Histogram({
      name: 'riffle_event_to_output_seconds',
      help: "From the event's Kafka timestamp to its outputs being durable (committed)",
      labelNames: ['stream'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: reg,
    })
    this.lag = new Gauge({
      name: 'riffle_consumer_lag',
      help: 'Consumer lag in messages, per topic and partition',
      labelNames: ['topic', 'partition'],
      registers: reg,
    })
    this.batches = new Counter({
      name: 'riffle_engine_batches_total',
      help: 'Batches processed, by result',
      labelNames: ['result'],
      registers: reg,
    })
    this.campaignErrors = new Counter({
      name: 'riffle_campaign_errors_total',
      help: 'Activations that failed inside a campaign (an expression error)',
      labelNames: ['campaign'],
      registers: reg,
    })
  }
}
