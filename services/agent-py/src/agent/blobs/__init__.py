"""Large texts by reference: a content-addressed blob store that activities read and write.

Workflow histories hold :class:`~agent.blobs.types.BlobRef` values (a hash, a size, a short
preview); the bytes live in the store. The local directory store is the default; anything
with the :class:`~agent.blobs.store.BlobStore` interface (S3, GCS) can take its place.
"""
