-- The API version an API key's requests are answered with when they send no FoodDispatch-Version
-- header (fooddispatch/versions.py): the version current when the key was made. Keys made before
-- versions existed were built against the first version's shapes, so they are pinned to it.
ALTER TABLE api_keys ADD COLUMN api_version text NOT NULL DEFAULT '2026-11-01';
ALTER TABLE api_keys ALTER COLUMN api_version DROP DEFAULT;
