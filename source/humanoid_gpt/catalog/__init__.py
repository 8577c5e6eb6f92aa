"""The catalog: where clips live and how every stage names them (docs/architecture.md, "Inside the core").

- :mod:`~humanoid_gpt.catalog.store`: a built corpus on disk (shards with cached kinematics, index, Parquet manifest)
  and reading it back: clips, motion libraries, exported files;
- :mod:`~humanoid_gpt.catalog.refs`: :class:`~humanoid_gpt.catalog.refs.ClipRef`, one notation for a file, a segment
  of it or a clip of a corpus, and loading clips by it;
- :mod:`~humanoid_gpt.catalog.manifests`: cluster manifests (cluster id -> clip references), saved and loaded.

It sits below governance (which builds corpora), hme (which writes manifests), the backends and experts (which read
them), so none of them reaches into another stage for its clips. Importing this package imports nothing else.
"""
