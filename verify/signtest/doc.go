// Package signtest makes what cosign makes, for tests: keys, cosign v2's
// classic signatures (the `sha256-<hex>.sig` tag) and cosign v3's Sigstore
// bundles (an OCI 1.1 referrer, or the referrers tag schema on a registry
// without the referrers API), signed with keys made in the test through the
// sigstore libraries, and a registry (go-containerregistry's in-memory one,
// with a spec-conformant referrers listing) to push them to.
//
// Nothing here verifies anything: the verifier under test must reach its own
// verdict on what this package writes.
//
// What is pushed, exactly:
//
//   - SignClassic (cosign v2 `cosign sign --key --tlog-upload=false`): tag
//     `sha256-<hex>.sig` in the image's repository, an OCI image manifest
//     (config application/vnd.oci.image.config.v1+json) with one layer per
//     signature, media type application/vnd.dev.cosign.simplesigning.v1+json,
//     content the simple-signing payload (see Payload), layer annotation
//     dev.cosignproject.cosign/signature = standard base64 of the signature
//     over the payload (SHA-256; Ed25519 pure). Signing again appends a layer.
//   - SignBundle (cosign v3 `cosign sign --key --new-bundle-format
//     --tlog-upload=false`): an OCI image manifest pushed by digest with
//     artifactType application/vnd.dev.sigstore.bundle.v0.3+json, config the
//     OCI empty descriptor, one layer (that media type) holding the bundle
//     JSON, subject the signed manifest, annotations
//     dev.sigstore.bundle.content=dsse-envelope,
//     dev.sigstore.bundle.predicateType=https://sigstore.dev/cosign/sign/v1 and
//     org.opencontainers.image.created. The bundle is a DSSE envelope of an
//     in-toto v1 statement about the digest, with the public key's hint as
//     verification material, no transparency log entry and no timestamp.
//     A registry without the referrers API gets the referrers tag schema:
//     tag `sha256-<hex>` holding an OCI index of the referrers.
package signtest
