// Package k8scheck validates the deployment files under deploy/ without a
// cluster, a Docker engine or the network:
//
//   - every Kubernetes manifest in deploy/kubernetes (the files that
//     kustomization.yaml lists, and the Secret template) is decoded strictly
//     into the typed structs of k8s.io/api: an unknown or misspelt field, a
//     field in the wrong case, a wrong type or a duplicate key fails;
//   - the manifests are then checked for what an API server would accept but
//     a Strata cluster needs: probes on /healthz and /readyz, resource
//     requests and limits, a non-root read-only security context, pinned
//     images, selectors that select, PodDisruptionBudgets and autoscalers
//     that target the Deployments, a grace period longer than the drain delay
//     and the shutdown timeout, references to ConfigMaps, Secrets, volumes
//     and ports that exist;
//   - deploy/compose.yaml is loaded with compose-go, the loader of Docker
//     Compose (the Compose JSON schema, interpolation, merge keys, project
//     consistency), and decoded strictly into the part of the Compose
//     specification it uses and checked for its topology: the services,
//     pinned images, health-gated dependencies, the shared keys volume, the
//     gateway's upstreams;
//   - the Dockerfile and .dockerignore: the build context keeps every file
//     the binary is built from;
//   - with a strata binary (STRATA_BIN, or built by the tests), every
//     container's and service's environment and flags pass
//     `strata config check`.
//
// It is its own Go module so that the root module does not depend on the
// Kubernetes libraries. Run it with `go test ./...` here, or through
// scripts/check-deploy.
package k8scheck
