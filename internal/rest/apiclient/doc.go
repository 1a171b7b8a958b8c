// Package apiclient is a client for a fixed set of collections, generated
// by oapi-codegen from the OpenAPI document Strata serves for them
// (openapi.json, kept current by TestGeneratedClient with -update). Tests
// drive the API through it to prove that the document is good enough for a
// standard generator.
package apiclient

//go:generate go tool oapi-codegen -generate types,client -package apiclient -o client.gen.go openapi.json
