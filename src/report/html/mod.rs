//! HTML reports: one self-contained file each (inline CSS and SVG, nothing fetched when it is
//! opened), written with maud templates; charts drawn by plotters ([`charts`]).

pub mod charts;
