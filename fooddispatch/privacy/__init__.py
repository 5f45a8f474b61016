"""Privacy rights (docs/PRIVACY.md): a person's export and erasure, the access log that records who read
whose data, and the retention of what is kept only for a while. The composition root's module: it
collects each package's part through that package's `privacy_store` (`export_person`, `erase_person`),
so no package reads another's tables."""
