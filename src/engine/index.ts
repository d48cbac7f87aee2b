// The engine's entry point: the webhook, the CLI and the tests call only this.
export { injectPod } from './pipeline.ts'
export type { EngineInput, EngineResult, AgentSummary, SecretSummary, Decision, InjectionType, JsonObject } from './types.ts'
export { loadSettings, defaultSettings, SETTINGS, SettingsError, type Settings } from './settings.ts'
