"""Numbered schema migrations. Append a new entry to change the schema; never edit an applied one."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial schema",
        [
            """create table runs (
                run_id varchar primary key, started_at timestamp, finished_at timestamp, status varchar,
                suite varchar, decoder varchar, family varchar, backend varchar, track varchar,
                weights_sha256 varchar, encoder_sha256 varchar, reference_set varchar,
                reference_set_sha256 varchar, seeds varchar, qa_version varchar, git_commit varchar,
                device varchar, config_json varchar, identity_sha256 varchar, n_shards integer,
                n_cases integer, error varchar)""",
            """create table cases (
                reference_set_sha256 varchar, case_id varchar, reference_set varchar, image_id varchar,
                file varchar, image_sha256 varchar, caption varchar, width integer, height integer,
                primary key (reference_set_sha256, case_id))""",
            """create table shards (
                run_id varchar, shard_index integer, n_cases integer, finished_at timestamp, worker varchar,
                primary key (run_id, shard_index))""",
            """create table results (
                run_id varchar, case_id varchar, seed integer, metric varchar, value double,
                status varchar, detail varchar, metric_version varchar,
                primary key (run_id, case_id, seed, metric))""",
            """create table set_results (
                run_id varchar, metric varchar, value double, ci_low double, ci_high double, n integer,
                status varchar, detail varchar, metric_version varchar, primary key (run_id, metric))""",
            """create table features (
                extractor varchar, extractor_sha256 varchar, image_sha256 varchar, preprocessing varchar,
                vector float[], primary key (extractor, extractor_sha256, image_sha256, preprocessing))""",
            """create table images (
                run_id varchar, case_id varchar, seed integer, kind varchar, png blob,
                primary key (run_id, case_id, seed, kind))""",
            """create table gates (
                gate_id varchar primary key, run_id varchar, baseline_run_id varchar, baseline_kind varchar,
                policy_sha256 varchar, policy_json varchar, verdict varchar, details_json varchar,
                decided_at timestamp)""",
            """create table signoffs (
                seq integer primary key, run_id varchar, reviewer varchar, decision varchar, note varchar,
                override boolean, signed_at timestamp, prev_hash varchar, hash varchar)""",
        ],
    ),
    (
        2,
        "signed sign-offs: one proof row per sign-off (gate, policy, signer key, Ed25519 signature)",
        [
            """create table signoff_proofs (
                seq integer primary key, format integer, gate_id varchar, policy_sha256 varchar,
                signer varchar, signature varchar)""",
        ],
    ),
    (
        3,
        "the decoder's output scale on the run row (its track is there already), so fairness checks read the store",
        ["alter table runs add column scale integer"],
    ),
    (
        4,
        "signed evidence: an approval signs the digest of the run's evidence (format 3); rows signed before keep "
        "null here, so their evidence cannot be verified and they never count as the approved baseline",
        ["alter table signoff_proofs add column evidence_sha256 varchar",
         "alter table signoff_proofs add column decoder varchar",
         "alter table signoff_proofs add column reference_set varchar",
         "alter table signoff_proofs add column reference_set_sha256 varchar"],
    ),
    (
        5,
        "full-resolution pixels: the strongest regions of each case's map (coordinates, score, crop box) and the "
        "reference, output and map as lossless tiles shared by content hash",
        [
            """create table regions (
                run_id varchar, case_id varchar, seed integer, map_kind varchar, rank integer, x integer,
                y integer, side integer, score double, crop_x integer, crop_y integer, crop_w integer,
                crop_h integer, primary key (run_id, case_id, seed, map_kind, rank))""",
            """create table pixels (
                run_id varchar, case_id varchar, seed integer, kind varchar, width integer, height integer,
                tile_side integer, image_sha256 varchar, primary key (run_id, case_id, seed, kind))""",
            """create table tiles (
                image_sha256 varchar, tile_y integer, tile_x integer, data blob,
                primary key (image_sha256, tile_y, tile_x))""",
        ],
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]
