// Package provenance is how every graph store combines one chunk's extracted
// entities and relations into its contribution, and aggregates the stored
// per-chunk mentions back into entities and relations. Sharing it is what
// makes the stores agree; the graphtest suite checks that they do.
package provenance
