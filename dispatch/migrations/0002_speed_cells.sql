-- What couriers' movement taught the live travel-time model (geo.speeds): per region, H3 cell and
-- local hour of day (24 = the cell's all-day row), decayed sums of the seconds hops really took and
-- of the seconds the nominal model expected. Learned over weeks from positions that dispatch does
-- not keep, so it is kept here and not in Redis: a restart or a new lease holder carries on from it.
CREATE TABLE dispatch_speed_cells (
    region     text NOT NULL,
    cell       text NOT NULL,
    hour       smallint NOT NULL CHECK (hour BETWEEN 0 AND 24),
    observed_s double precision NOT NULL,
    nominal_s  double precision NOT NULL,
    samples    bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (region, cell, hour)
);
