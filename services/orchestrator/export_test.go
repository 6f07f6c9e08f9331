package orchestrator

// FitAnswer exposes fitAnswer to the external tests.
var FitAnswer = fitAnswer
