/**
 * Ingestion: fleet events from JetStream into Postgres, in batches, once.
 *
 * @example
 * ```ts
 * await ensureIngestConsumer(nc, fleet);
 * const worker = startIngestWorker({ db, nc });
 * await worker.stop();
 * ```
 */
export {
  type BatchReport,
  type IngestStats,
  type IngestWorker,
  type IngestWorkerOptions,
  isDataError,
  startIngestWorker,
  WorkerCrash,
} from "./worker.ts";
export {
  deleteFleetStreams,
  ensureFleetStreams,
  ensureIngestConsumer,
  type IngestConsumerOptions,
  ingestDurable,
} from "./stream.ts";
export {
  type DeadLetter,
  MachineCache,
  raiseAlert,
  recordDeadLetters,
  storeEvents,
  type StoreOutcome,
} from "./store.ts";
export { processedEventsRetentionMs, type PruneOptions, pruneProcessedEvents } from "./prune.ts";
