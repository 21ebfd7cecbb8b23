import { regressionTests } from "./regressions.ts";

await regressionTests(2);
