// The engine's entry point: the webhook, the CLI and the tests call only this.
export { injectPod } from './pipeline.ts'
export type { EngineInput, EngineResult, AgentSummary, SecretSummary, Decision, InjectionType, JsonObject } from './types.ts'
export type { EngineSettings } from './settings.ts'
