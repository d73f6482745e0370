import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The process's Prometheus metrics. One registry per hub instance (tests run several hubs in one
 * process, so nothing here is a global).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly messagesIn = new Counter({ name: 'bulwark_messages_in_total', help: 'Inbound messages accepted, by channel', labelNames: ['channel'], registers: [this.registry] });
  readonly duplicatesIn = new Counter({ name: 'bulwark_messages_duplicate_total', help: 'Inbound redeliveries dropped by dedupe, by channel', labelNames: ['channel'], registers: [this.registry] });
  readonly messagesOut = new Counter({ name: 'bulwark_messages_out_total', help: 'Replies delivered, by channel', labelNames: ['channel'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'bulwark_errors_total', help: 'Errors, by where they happened', labelNames: ['where'], registers: [this.registry] });
  readonly turnDuration = new Histogram({ name: 'bulwark_job_duration_seconds', help: 'Agent turn: from inbound accept to reply enqueued', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly deliveryLatency = new Histogram({ name: 'bulwark_delivery_latency_seconds', help: 'End to end: from inbound accept to reply delivered, by channel', labelNames: ['channel'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly llmDuration = new Histogram({ name: 'bulwark_llm_request_duration_seconds', help: 'One LLM call (one step of a turn)', labelNames: ['provider', 'outcome'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60], registers: [this.registry] });
  readonly llmTokens = new Counter({ name: 'bulwark_llm_tokens_total', help: 'LLM tokens, by kind (input, output)', labelNames: ['provider', 'kind'], registers: [this.registry] });
  readonly leaks = new Counter({ name: 'bulwark_leaks_total', help: 'Credentials found and removed from outbound text, by place', labelNames: ['place'], registers: [this.registry] });
  readonly httpConnections = new Gauge({ name: 'bulwark_http_connections', help: 'Open HTTP connections to the hub (read at scrape time)', registers: [this.registry] });
  readonly eventStreams = new Gauge({ name: 'bulwark_web_event_streams', help: 'Open server-sent event streams of the web chat', registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'bulwark_queue_depth', help: 'Jobs per queue and state', labelNames: ['queue', 'state'], registers: [this.registry] });

  constructor(opts: { defaults?: boolean } = {}) {
    if (opts.defaults !== false) collectDefaultMetrics({ register: this.registry, prefix: 'bulwark_process_' });
  }
}
