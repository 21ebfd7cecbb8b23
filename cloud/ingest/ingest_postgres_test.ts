import { ingestionSuite } from "./ingest_suite.ts";

ingestionSuite("postgres");
