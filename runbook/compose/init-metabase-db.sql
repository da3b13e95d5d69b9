-- Metabase keeps its application data in its own database on the compose Postgres (first start only).
CREATE USER metabase WITH PASSWORD 'metabase';
CREATE DATABASE metabase OWNER metabase;
