-- One database per service (each service owns its data).
CREATE DATABASE vo_ingest;
CREATE DATABASE vo_qualify;
CREATE DATABASE vo_dispatch;
CREATE DATABASE vo_crm;
