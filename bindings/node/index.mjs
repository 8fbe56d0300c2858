// ESM entry: the same module as index.js (CommonJS), re-exported.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const peerlb = require('./index.js')

export const {
  PeerList,
  Upstream,
  Choice,
  Session,
  AdminResult,
  adminResultCodes,
  ManualClock,
  RetryBudget,
  RequestRule,
  declined,
  Subscriber,
  StaticUpdater,
  FileUpdater,
  DnsUpdater,
  EtcdUpdater,
  Binding,
  deterministicSubset,
  AdminServer,
  serveAdmin,
  metrics,
  errorCodes,
  strategies,
  coreVersion,
} = peerlb
export default peerlb
